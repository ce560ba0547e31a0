use super::*;

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
                ready_ms: None,
                failed_ms: None,
            },
            StepRecord::pending("web", "process/web"),
        ],
    }
}

#[tokio::test]
async fn executions_round_trip_and_update_in_place() {
    let store = SqliteStore::in_memory().await.expect("open");
    let mut record = execution("e1", "shop", 1_000);
    store.put_execution(&record).await.expect("insert");
    assert_eq!(store.execution("e1").await.expect("read"), Some(record.clone()));

    record.outcome = Outcome::Failed;
    record.error = Some("web: exited with status 1".into());
    record.finished_ms = Some(1_500);
    record.steps[1].state = "failed".into();
    record.steps[1].reason = Some("exited with status 1".into());
    store.put_execution(&record).await.expect("update");
    assert_eq!(store.execution("e1").await.expect("read"), Some(record));
    assert_eq!(store.execution("missing").await.expect("read"), None);
}

#[tokio::test]
async fn executions_list_newest_first_by_flow_with_pages() {
    let store = SqliteStore::in_memory().await.expect("open");
    for i in 0..5 {
        store.put_execution(&execution(&format!("s{i}"), "shop", 1_000 + i)).await.expect("put");
    }
    store.put_execution(&execution("a0", "admin", 5_000)).await.expect("put");
    let all = store.executions(None, Page::default()).await.expect("list");
    assert_eq!(all.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["a0", "s4", "s3", "s2", "s1", "s0"]);
    let shop = store.executions(Some("shop"), Page { offset: 1, limit: 2 }).await.expect("list");
    assert_eq!(shop.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["s3", "s2"]);
    assert_eq!(shop[0].steps.len(), 2);
}

#[tokio::test]
async fn activity_only_moves_forward() {
    let store = SqliteStore::in_memory().await.expect("open");
    store.record_activity("shop", 2_000).await.expect("record");
    store.record_activity("shop", 1_000).await.expect("record older");
    store.record_activity("admin", 10).await.expect("record");
    assert_eq!(store.activity().await.expect("read"), vec![("admin".into(), 10), ("shop".into(), 2_000)]);
}

#[tokio::test]
async fn flow_state_upserts() {
    let store = SqliteStore::in_memory().await.expect("open");
    let mut record = FlowStateRecord { flow: "shop".into(), state: "asleep".into(), pinned: None, disabled: Some(true), updated_ms: 1 };
    store.put_flow_state(&record).await.expect("put");
    record.state = "awake".into();
    record.pinned = Some(true);
    store.put_flow_state(&record).await.expect("put again");
    assert_eq!(store.flow_states().await.expect("read"), vec![record]);
}

#[tokio::test]
async fn file_store_survives_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nested/state.db");
    {
        let store = SqliteStore::open(&path).await.expect("open");
        store.record_activity("shop", 42).await.expect("record");
    }
    let store = SqliteStore::open(&path).await.expect("reopen");
    assert_eq!(store.activity().await.expect("read"), vec![("shop".into(), 42)]);
}
