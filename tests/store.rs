//! The store conformance suite: every case runs unchanged against SQLite (a temporary file), Postgres
//! (the real server on 127.0.0.1:5432, a fresh database per test) and DynamoDB (a real
//! DynamoDB-protocol server, `moto`, started per test process).

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use leannodes_harness::stores::{Moto, TestPostgres};
use leannodes_store::*;
use serde_json::json;

/// A store under test with whatever keeps its backing alive.
struct Backend {
    store: Arc<dyn Store>,
    _guard: Box<dyn std::any::Any + Send>,
}

impl Backend {
    async fn sqlite() -> Backend {
        let dir = leannodes_harness::workdir();
        let store = SqliteStore::open(&dir.path().join("store.db")).await.expect("open sqlite");
        Backend { store: Arc::new(store), _guard: Box::new(dir) }
    }

    async fn postgres() -> Backend {
        let db = TestPostgres::create();
        let store = PostgresStore::open(&db.url).await.expect("open postgres");
        Backend { store: Arc::new(store), _guard: Box::new(db) }
    }

    async fn dynamodb() -> Backend {
        let moto = Moto::start();
        let target = DynamoTarget::parse(&moto.url("leannodes")).expect("url");
        let credentials = AwsCredentials::new("testing", "testing", None, None, "tests");
        let store = DynamoStore::open_with(&target, Some(credentials)).await.expect("open dynamodb");
        Backend { store: Arc::new(store), _guard: Box::new(moto) }
    }
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let backend = super::Backend::sqlite().await;
                super::$case(backend.store.as_ref()).await;
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let backend = super::Backend::postgres().await;
                super::$case(backend.store.as_ref()).await;
            })*
        }
        mod dynamodb {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let backend = super::Backend::dynamodb().await;
                super::$case(backend.store.as_ref()).await;
            })*
        }
    };
}

conformance!(
    every_family_has_crud_with_optimistic_concurrency,
    listings_page_through_a_prefix_in_key_order,
    expired_records_vanish_and_their_keys_can_be_reused,
    executions_round_trip_and_list_newest_first,
    flow_state_and_activity_merge_with_max,
    fifty_concurrent_claimers_have_exactly_one_winner,
    leader_lease_renews_and_expires,
    twenty_concurrent_audit_appends_form_one_chain,
);

fn is_conflict(e: &StoreError) -> bool {
    matches!(e, StoreError::Conflict { .. })
}

/// Create, read, update (and a stale update), duplicate create, stale and real delete of one record.
async fn crud<T: Record + PartialEq + Debug + Clone>(store: &dyn Store, original: T, changed: T) {
    let family = T::FAMILY;
    let records = store.records::<T>();
    let key = original.key();
    assert_eq!(key, changed.key(), "{family}: both values share a key");
    let created = records.create(&original).await.unwrap_or_else(|e| panic!("{family}: create: {e}"));
    assert_eq!(created.version, 1, "{family}");
    assert_eq!(records.get(&key).await.expect("get").map(|v| v.value), Some(original.clone()), "{family}");
    let dup = records.create(&original).await.expect_err("duplicate create");
    assert!(is_conflict(&dup), "{family}: duplicate create gives a conflict, got {dup}");

    let updated = records.update(&changed, created.version).await.unwrap_or_else(|e| panic!("{family}: update: {e}"));
    assert_eq!(updated.version, 2, "{family}");
    let stale = records.update(&original, created.version).await.expect_err("stale update");
    assert!(is_conflict(&stale), "{family}: stale update is rejected, got {stale}");
    assert!(stale.to_string().contains("expected version 1, found version 2"), "{stale}");
    assert_eq!(records.get(&key).await.expect("get").map(|v| (v.value, v.version)), Some((changed.clone(), 2)), "{family}");

    let stale_delete = records.delete(&key, Some(1)).await.expect_err("stale delete");
    assert!(is_conflict(&stale_delete), "{family}: {stale_delete}");
    records.delete(&key, Some(2)).await.unwrap_or_else(|e| panic!("{family}: delete: {e}"));
    assert_eq!(records.get(&key).await.expect("get"), None, "{family}");
    let missing = records.update(&changed, 2).await.expect_err("update of a deleted record");
    assert!(matches!(missing, StoreError::NotFound { .. }), "{family}: {missing}");
    // The delete was a write (version 3): an update prepared before it, whose clock reads earlier than
    // the delete's, can never match the deleted record and bring it back (a revoked token did come
    // back that way while its last-use stamp was written).
    let upserted = records.upsert(&original).await.expect("upsert");
    assert_eq!(upserted.version, 4, "{family}: a delete takes a version, and versions keep growing across it");
}

async fn every_family_has_crud_with_optimistic_concurrency(store: &dyn Store) {
    let later = now() + 3_600_000;
    let spec = json!({ "hosts": ["shop.example.com"], "nodes": [{ "name": "web", "kind": "process" }] });
    crud(
        store,
        FlowDoc { name: "shop".into(), active: None, latest: 0, created_by: "user:u1".into(), created_ms: 1 },
        FlowDoc { name: "shop".into(), active: Some(1), latest: 1, created_by: "user:u1".into(), created_ms: 1 },
    )
    .await;
    let version = |message: &str| FlowVersion {
        flow: "shop".into(),
        number: 7,
        spec: spec.clone(),
        author: "user:u1".into(),
        message: message.into(),
        note: String::new(),
        base: Some(6),
        created_ms: 1,
    };
    crud(store, version("first"), version("reworded")).await;
    let draft = |spec: serde_json::Value, lock: Option<DraftLock>| Draft {
        flow: "shop".into(),
        spec,
        base: None,
        branched_from: None,
        revision: 1,
        saved_by: "user:u1".into(),
        saved_ms: 1,
        lock,
    };
    let lock = DraftLock { holder: "user:u1".into(), holder_email: "ada@example.com".into(), expires_ms: later };
    crud(store, draft(json!({}), None), draft(spec.clone(), Some(lock))).await;
    let user = |name: &str| User {
        id: "u1".into(),
        email: "ada@example.com".into(),
        name: name.into(),
        roles: vec![],
        disabled: false,
        created_ms: 5,
        password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
        sso_roles: vec![],
        identity: None,
        sessions_after_ms: 0,
    };
    crud(store, user("Ada"), user("Ada L.")).await;
    let invitation = |roles: Vec<String>| Invitation {
        token_hash: "9f86d0".into(),
        purpose: LinkPurpose::Invitation,
        email: "bob@example.com".into(),
        roles,
        created_by: "user:u1".into(),
        created_ms: 1,
        expires_ms: later,
    };
    crud(store, invitation(vec![]), invitation(vec!["viewer".into()])).await;
    crud(
        store,
        Group { name: "ops".into(), members: vec!["u1".into()], roles: vec![] },
        Group { name: "ops".into(), members: vec!["u1".into(), "u2".into()], roles: vec!["operator".into()] },
    )
    .await;
    crud(
        store,
        Role { name: "drainer".into(), permissions: vec!["flows.read".into()], description: String::new() },
        Role { name: "drainer".into(), permissions: vec!["flows.read".into(), "flows.operate".into()], description: "drains".into() },
    )
    .await;
    crud(
        store,
        FlowAcl { flow: "shop".into(), grants: vec![Grant { subject: "group:ops".into(), role: "viewer".into() }] },
        FlowAcl {
            flow: "shop".into(),
            grants: vec![
                Grant { subject: "group:ops".into(), role: "operator".into() },
                Grant { subject: "user:u1".into(), role: "viewer".into() },
            ],
        },
    )
    .await;
    crud(
        store,
        Setting { name: "retention".into(), value: json!("30d") },
        Setting { name: "retention".into(), value: json!({ "days": 7 }) },
    )
    .await;
    let token = |scopes: Vec<String>| AccessToken {
        id: "lnp_abc".into(),
        user: "u1".into(),
        name: "ci".into(),
        secret_hash: "e3b0c4".into(),
        scopes,
        created_ms: 1,
        expires_ms: Some(later),
        last_used_ms: None,
    };
    crud(store, token(vec!["flows.read".into()]), token(vec!["flows.read".into(), "flows.operate".into()])).await;
    let route = |url: &str| NotificationRecord {
        spec: leannodes_config::file::NotificationSpec {
            name: "oncall".into(),
            kind: leannodes_config::file::NotificationKind::Webhook,
            format: None,
            url: url.into(),
            headers: Default::default(),
            routing_key: None,
            events: Some(vec![leannodes_config::file::NoticeKind::WakeFailed]),
            flows: None,
        },
        updated_by: "user:u1".into(),
    };
    crud(store, route("https://hooks.example.com/a"), route("https://hooks.example.com/b")).await;
    let session = |address: &str| Session {
        id_hash: "5e55".into(),
        user: "u1".into(),
        method: "password".into(),
        created_ms: 1,
        expires_ms: later,
        address: address.into(),
        user_agent: "curl/8".into(),
    };
    crud(store, session("10.0.0.1"), session("10.0.0.2")).await;
    crud(
        store,
        Login { name: "email/ada@example.com".into(), user: "u1".into() },
        Login { name: "email/ada@example.com".into(), user: "u2".into() },
    )
    .await;
    let throttle =
        |failures: u32| Throttle { key: "address/10.0.0.1".into(), failures, window_start_ms: 1, blocked_until_ms: 0, expires_ms: later };
    crud(store, throttle(1), throttle(2)).await;
    let request = |verifier: &str| AuthRequest {
        state_hash: "57a7e".into(),
        provider: "oidc:corp".into(),
        binding_hash: "b1".into(),
        verifier: verifier.into(),
        nonce: "n".into(),
        return_to: "/".into(),
        expires_ms: later,
    };
    crud(store, request("v1"), request("v2")).await;
    let session = |expires_ms: i64| TestSession {
        flow: "shop".into(),
        version: 3,
        host: "v3--shop.test-sessions.shop.example.com".into(),
        created_by: "user:u1".into(),
        created_ms: 1,
        expires_ms,
    };
    crud(store, session(later), session(later + 1)).await;
    let ledger =
        |since: Option<i64>| SleepLedger { flow: "shop".into(), tracked_since_ms: 1, intervals: vec![[1, 2]], asleep_since_ms: since };
    crud(store, ledger(None), ledger(Some(3))).await;
    assert_eq!(Family::ALL.len(), 17, "every family above is covered");
}

async fn listings_page_through_a_prefix_in_key_order(store: &dyn Store) {
    let acls = store.records::<Login>();
    let acl = |flow: &str, i: usize| Login { name: format!("{flow}/user:{i:02}"), user: format!("u{i}") };
    for i in 0..25 {
        acls.create(&acl("shop", i)).await.expect("create");
    }
    for i in 0..4 {
        acls.create(&acl("shopping", i)).await.expect("create");
        acls.create(&acl("api", i)).await.expect("create");
    }
    let mut page = Page::first(10);
    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    loop {
        let listing = acls.list("shop/", &page).await.expect("list");
        sizes.push(listing.items.len());
        seen.extend(listing.items.into_iter().map(|v| v.value.name.split_once('/').map(|(_, s)| s.to_string()).unwrap_or_default()));
        match listing.next {
            Some(next) => page = Page { after: Some(next), limit: 10 },
            None => break,
        }
    }
    assert_eq!(sizes, vec![10, 10, 5], "three pages, the last one short");
    assert_eq!(seen, (0..25).map(|i| format!("user:{i:02}")).collect::<Vec<_>>(), "key order, nothing of `shopping/`");
    let all = acls.list("", &Page::first(100)).await.expect("list all");
    assert_eq!(all.items.len(), 33);
    assert_eq!(all.next, None);
    let keys: Vec<String> = all.items.iter().map(|v| v.value.key()).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "byte order across flows");
    assert_eq!(keys[0], "api/user:00");
    let versions = store.records::<FlowVersion>();
    for number in [2, 10, 1] {
        let v = FlowVersion {
            flow: "shop".into(),
            number,
            spec: json!({}),
            author: "a".into(),
            message: String::new(),
            note: String::new(),
            base: None,
            created_ms: 0,
        };
        versions.create(&v).await.expect("create version");
    }
    let numbers: Vec<u64> = versions.list("shop/", &Page::default()).await.expect("list").items.iter().map(|v| v.value.number).collect();
    assert_eq!(numbers, vec![1, 2, 10], "versions list in numeric order");
}

async fn expired_records_vanish_and_their_keys_can_be_reused(store: &dyn Store) {
    let invitations = store.records::<Invitation>();
    let invitation = |hash: &str, expires_ms: i64| Invitation {
        token_hash: hash.into(),
        purpose: LinkPurpose::PasswordReset,
        email: "x@example.com".into(),
        roles: vec![],
        created_by: "user:u1".into(),
        created_ms: 1,
        expires_ms,
    };
    let soon = invitations.create(&invitation("soon", now() + 700)).await.expect("create");
    invitations.create(&invitation("later", now() + 3_600_000)).await.expect("create");
    assert!(invitations.get("soon").await.expect("get").is_some(), "alive before its expiry");
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(invitations.get("soon").await.expect("get"), None, "gone after its expiry");
    let listed: Vec<String> =
        invitations.list("", &Page::default()).await.expect("list").items.into_iter().map(|v| v.value.token_hash).collect();
    assert_eq!(listed, vec!["later".to_string()]);
    let update = invitations.update(&invitation("soon", now() + 1000), soon.version).await.expect_err("update of an expired record");
    assert!(matches!(update, StoreError::NotFound { .. }), "{update}");
    let delete = invitations.delete("soon", None).await.expect_err("delete of an expired record");
    assert!(matches!(delete, StoreError::NotFound { .. }), "{delete}");
    let again = invitations.create(&invitation("soon", now() + 3_600_000)).await.expect("an expired key can be created again");
    assert!(again.version > soon.version, "versions never repeat");
    // Purging removes what expired before the given time, and only that.
    invitations.create(&invitation("brief", now() + 200)).await.expect("create");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(store.purge_expired(now() - 60_000).await.expect("purge old"), 0, "nothing expired a minute ago");
    let purged = store.purge_expired(now()).await.expect("purge");
    let dynamo = store.backend() == "dynamodb";
    assert_eq!(purged, if dynamo { 0 } else { 1 }, "only `brief` expired (DynamoDB leaves it to its TTL)");
    assert!(invitations.get("soon").await.expect("get").is_some(), "live records stay");
    assert!(invitations.get("later").await.expect("get").is_some(), "live records stay");
    // Records without expiry stay.
    store.records::<Setting>().create(&Setting { name: "n".into(), value: json!(1) }).await.expect("create");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(store.records::<Setting>().get("n").await.expect("get").is_some());
}

fn execution(id: &str, flow: &str, started_ms: i64) -> ExecutionRecord {
    ExecutionRecord {
        id: id.into(),
        flow: flow.into(),
        trigger: "request".into(),
        outcome: Outcome::Running,
        error: None,
        started_ms,
        finished_ms: None,
        steps: vec![
            StepRecord {
                node: "db".into(),
                workload: "process/db".into(),
                state: "starting".into(),
                reason: None,
                requested_ms: Some(started_ms),
                started_ms: Some(started_ms + 1),
                scheduled_ms: Some(started_ms + 2),
                ready_ms: None,
                failed_ms: None,
            },
            StepRecord::pending("web", "process/web"),
        ],
    }
}

async fn executions_round_trip_and_list_newest_first(store: &dyn Store) {
    let mut record = execution("e0001", "shop", 1_000);
    store.put_execution(&record).await.expect("insert");
    assert_eq!(store.execution("e0001").await.expect("read"), Some(record.clone()));
    record.outcome = Outcome::Failed;
    record.error = Some("web: exited with status 1".into());
    record.finished_ms = Some(1_500);
    record.steps[1].state = "failed".into();
    record.steps[1].reason = Some("exited with status 1".into());
    store.put_execution(&record).await.expect("update");
    assert_eq!(store.execution("e0001").await.expect("read"), Some(record));
    assert_eq!(store.execution("missing").await.expect("read"), None);

    for i in 2..=6 {
        store.put_execution(&execution(&format!("e{i:04}"), "shop", 1_000 + i)).await.expect("put");
    }
    store.put_execution(&execution("e0007", "blog", 2_000)).await.expect("put");
    let first = store.executions(Some("shop"), &Page::first(4)).await.expect("list");
    let ids = |l: &Listing<ExecutionRecord>| l.items.iter().map(|r| r.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&first), vec!["e0006", "e0005", "e0004", "e0003"]);
    let second = store.executions(Some("shop"), &Page { after: first.next.clone(), limit: 4 }).await.expect("list");
    assert_eq!(ids(&second), vec!["e0002", "e0001"]);
    assert_eq!(second.next, None);
    let all = store.executions(None, &Page::default()).await.expect("list all");
    assert_eq!(ids(&all)[0], "e0007");
    assert_eq!(all.items.len(), 7);
}

async fn flow_state_and_activity_merge_with_max(store: &dyn Store) {
    let state = FlowStateRecord { flow: "shop".into(), state: "awake".into(), pinned: Some(true), disabled: None, updated_ms: 10 };
    store.put_flow_state(&state).await.expect("put");
    let replaced = FlowStateRecord { state: "asleep".into(), pinned: None, disabled: Some(false), updated_ms: 20, ..state };
    store.put_flow_state(&replaced).await.expect("replace");
    assert_eq!(store.flow_states().await.expect("read"), vec![replaced]);

    // Replicas flush in any order; the store keeps the latest.
    let writes = [("shop", 5_000), ("shop", 7_000), ("shop", 6_000), ("blog", 100)];
    futures::future::join_all(writes.iter().map(|(f, at)| store.record_activity(f, *at)))
        .await
        .into_iter()
        .for_each(|r| r.expect("record"));
    store.record_activity("shop", 6_500).await.expect("older write");
    assert_eq!(store.activity().await.expect("read"), vec![("blog".to_string(), 100), ("shop".to_string(), 7_000)]);
}

async fn fifty_concurrent_claimers_have_exactly_one_winner(store: &dyn Store) {
    let ttl = Duration::from_millis(1_500);
    let claims =
        futures::future::join_all(
            (0..50).map(|i| {
                let holder = format!("replica-{i}");
                async move {
                    store.acquire_lease(LeaseRequest { name: "claim/shop", holder: &holder, ttl, data: "exec-1" }).await.expect("acquire")
                }
            }),
        )
        .await;
    let winners: Vec<Lease> = claims.into_iter().flatten().collect();
    assert_eq!(winners.len(), 1, "exactly one of 50 concurrent claimers wins: {winners:?}");
    let winner = &winners[0];
    assert_eq!(store.lease("claim/shop").await.expect("read").as_ref(), Some(winner));
    assert_eq!(winner.data, "exec-1");
    let late = store.acquire_lease(LeaseRequest { name: "claim/shop", holder: "late", ttl, data: "" }).await.expect("acquire");
    assert_eq!(late, None, "held until it expires");
    // Other names are independent.
    assert!(store.acquire_lease(LeaseRequest { name: "claim/blog", holder: "late", ttl, data: "" }).await.expect("acquire").is_some());

    tokio::time::sleep(ttl + Duration::from_millis(300)).await;
    assert_eq!(store.lease("claim/shop").await.expect("read"), None, "expired");
    let next = store.acquire_lease(LeaseRequest { name: "claim/shop", holder: "survivor", ttl, data: "exec-2" }).await.expect("acquire");
    let next = next.expect("after the winner's lease expired another replica can claim");
    assert!(next.token > winner.token, "fencing token grows: {} then {}", winner.token, next.token);
    assert_eq!(store.renew_lease(winner, ttl).await.expect("renew"), None, "the old winner has lost it");
    assert!(!store.release_lease(winner).await.expect("release"), "and cannot release it");
    assert!(store.release_lease(&next).await.expect("release"));
    assert_eq!(store.lease("claim/shop").await.expect("read"), None);
    let third = store.acquire_lease(LeaseRequest { name: "claim/shop", holder: "third", ttl, data: "" }).await.expect("acquire");
    assert!(third.expect("free after release").token > next.token, "tokens keep growing after a release");
}

async fn leader_lease_renews_and_expires(store: &dyn Store) {
    let ttl = Duration::from_millis(1_000);
    let request = |holder: &'static str| LeaseRequest { name: "leader/drainer", holder, ttl, data: "" };
    let lease = store.acquire_lease(request("a")).await.expect("acquire").expect("free");
    let mut current = lease.clone();
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        current = store.renew_lease(&current, ttl).await.expect("renew").expect("still the holder");
        assert_eq!(current.token, lease.token, "renewal keeps the token");
        assert_eq!(store.acquire_lease(request("b")).await.expect("acquire"), None, "a renewed lease is not taken over");
    }
    // 1.6 s after acquiring a 1 s lease, it is held only thanks to the renewals.
    assert_eq!(store.lease("leader/drainer").await.expect("read").map(|l| l.holder), Some("a".into()));
    let again = store.acquire_lease(request("a")).await.expect("acquire").expect("the holder may re-acquire");
    assert!(again.token > lease.token);
    tokio::time::sleep(ttl + Duration::from_millis(300)).await;
    let b = store.acquire_lease(request("b")).await.expect("acquire").expect("after expiry another replica leads");
    assert_eq!(store.renew_lease(&again, ttl).await.expect("renew"), None, "the old leader learns it lost");
    assert_eq!(store.lease("leader/drainer").await.expect("read"), Some(b));
}

async fn twenty_concurrent_audit_appends_form_one_chain(store: &dyn Store) {
    let appended = futures::future::join_all((0..20).map(|i| async move {
        let entry = AuditEntry {
            actor: format!("user:{i}"),
            source: format!("10.0.0.{i}"),
            action: if i % 2 == 0 { "flow.warm".into() } else { "flow.drain".into() },
            target: if i < 5 { "flow/shop".into() } else { "flow/api".into() },
            detail: json!({ "n": i }).to_string(),
        };
        store.append_audit(&entry).await.expect("append")
    }))
    .await;
    let mut seqs: Vec<u64> = appended.iter().map(|r| r.seq).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=20).collect::<Vec<_>>(), "every append got its own place");
    let mut chain = Vec::new();
    let mut page = Page::first(7);
    loop {
        let listing = store.audit(&AuditQuery::chain(), &page).await.expect("list audit");
        chain.extend(listing.items);
        match listing.next {
            Some(next) => page = Page { after: Some(next), limit: 7 },
            None => break,
        }
    }
    assert_eq!(chain.len(), 20);
    assert_eq!(chain[0].prev_hash, AuditRecord::GENESIS);
    assert_eq!(AuditRecord::verify_chain(&chain), Ok(()), "one unbroken chain");
    let mut actors: Vec<String> = chain.iter().map(|r| r.entry.actor.clone()).collect();
    actors.sort();
    actors.dedup();
    assert_eq!(actors.len(), 20, "no entry lost or duplicated");
    assert_eq!(AuditRecord::verify_after(None, &chain), Ok(()));
    assert_eq!(AuditRecord::verify_after(Some(&chain[6]), &chain[7..]), Ok(()), "verified in pages");
    let mut tampered = chain.clone();
    tampered[9].entry.detail = "{}".into();
    assert_eq!(AuditRecord::verify_chain(&tampered), Err(10), "a changed entry breaks the chain at its place");
    assert_eq!(AuditRecord::verify_after(None, &tampered).map_err(|b| b.sequence), Err(10));
    let mut resourced = chain.clone();
    resourced[3].entry.source = "192.0.2.1".into();
    assert_eq!(AuditRecord::verify_after(None, &resourced).map_err(|b| b.sequence), Err(4), "the source address is covered by the hash");
    let mut gap = chain.clone();
    gap.remove(12);
    let broken = AuditRecord::verify_after(None, &gap).expect_err("a missing record");
    assert_eq!(broken.sequence, 13, "{broken:?}");
    assert!(broken.reason.contains("missing"), "{broken:?}");
    // Filters, newest first, paged (appends were concurrent: the expected order comes from the chain).
    let mut shop: Vec<u64> = chain.iter().filter(|r| r.entry.target == "flow/shop").map(|r| r.seq).collect();
    shop.reverse();
    assert_eq!(shop.len(), 5);
    let query = AuditQuery { target: Some("flow/shop".into()), newest_first: true, ..AuditQuery::default() };
    let first = store.audit(&query, &Page::first(3)).await.expect("filtered");
    assert_eq!(first.items.iter().map(|r| r.seq).collect::<Vec<_>>(), shop[..3].to_vec());
    let second = store.audit(&query, &Page { after: first.next.clone(), limit: 3 }).await.expect("next page");
    assert_eq!(second.items.iter().map(|r| r.seq).collect::<Vec<_>>(), shop[3..].to_vec());
    assert_eq!(second.next, None);
    let seven = chain.iter().find(|r| r.entry.actor == "user:7").map(|r| r.seq);
    let drains = AuditQuery { action: Some("flow.drain".into()), actor: Some("user:7".into()), ..AuditQuery::default() };
    let only = store.audit(&drains, &Page::first(50)).await.expect("by actor and action");
    assert_eq!(only.items.iter().map(|r| r.seq).next(), seven, "user:7 drained once");
    assert_eq!(only.items.len(), 1);
    assert_eq!(only.items[0].entry.source, "10.0.0.7");
    let warms = AuditQuery { action: Some("flow.warm".into()), actor: Some("user:7".into()), ..AuditQuery::default() };
    assert!(store.audit(&warms, &Page::first(50)).await.expect("none").items.is_empty(), "user:7 never warmed");
    let bad = store.audit(&AuditQuery::chain(), &Page { after: Some("not-a-number".into()), limit: 5 }).await.expect_err("bad cursor");
    assert!(matches!(bad, StoreError::Invalid(_)), "{bad}");
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
