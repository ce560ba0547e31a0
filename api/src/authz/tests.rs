use super::*;

fn user(id: &str, roles: &[&str]) -> User {
    User {
        id: id.into(),
        email: format!("{id}@example.com"),
        name: id.into(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        disabled: false,
        created_ms: 0,
        password_hash: None,
        sso_roles: vec![],
        identity: None,
        sessions_after_ms: 0,
    }
}

fn snapshot() -> Snapshot {
    let mut snap = Snapshot::default();
    for (name, _, set) in built_in_roles() {
        snap.roles.insert(name.into(), set);
    }
    snap.roles.insert("drainer".into(), [Permission::FlowsRead, Permission::FlowsOperate, Permission::AuditRead].into_iter().collect());
    snap.group_roles.insert("bob".into(), vec!["viewer".into()]);
    snap.groups_of.insert("bob".into(), vec!["ops".into()]);
    snap.grants.insert("group:ops".into(), vec![("shop".into(), "operator".into())]);
    snap.grants.insert("user:carol".into(), vec![("api".into(), "drainer".into())]);
    snap
}

fn actor(id: &str) -> Actor {
    Actor::User { id: id.into(), email: format!("{id}@example.com") }
}

#[test]
fn permission_sets_combine() {
    let read: PermissionSet = [Permission::FlowsRead].into_iter().collect();
    let operate: PermissionSet = [Permission::FlowsRead, Permission::FlowsOperate].into_iter().collect();
    assert!(read.is_subset(operate) && !operate.is_subset(read));
    assert_eq!(read.union(operate), operate);
    assert_eq!(read.intersect(operate), read);
    assert!(PermissionSet::all().contains(Permission::TokensManage));
    assert_eq!(PermissionSet::all().flow_scoped().iter().count(), 5);
    assert_eq!(PermissionSet::from_names(&["flows.read".to_string(), "nonsense".to_string()]), read);
    for p in Permission::ALL {
        assert_eq!(Permission::parse(p.as_str()), Some(p));
        assert_eq!(serde_json::to_value(p).ok(), Some(serde_json::Value::String(p.as_str().into())));
    }
}

#[test]
fn built_in_roles_are_as_documented() {
    let role = |name: &str| built_in_roles().into_iter().find(|(n, _, _)| *n == name).map(|(_, _, s)| s).unwrap_or_default();
    assert_eq!(role("admin"), PermissionSet::all());
    assert_eq!(role("operator").iter().collect::<Vec<_>>(), vec![Permission::FlowsRead, Permission::FlowsOperate]);
    assert_eq!(role("editor").iter().collect::<Vec<_>>(), vec![Permission::FlowsRead, Permission::FlowsEdit]);
    assert_eq!(role("viewer").iter().collect::<Vec<_>>(), vec![Permission::FlowsRead]);
}

#[test]
fn roles_groups_and_grants_make_the_principal() {
    let snap = snapshot();
    let bob = snap.principal(actor("bob"), &user("bob", &[]), None);
    assert!(bob.can(Permission::FlowsRead), "viewer through the group");
    assert!(!bob.can(Permission::FlowsOperate));
    assert!(bob.can_on(Permission::FlowsOperate, "shop"), "operator on shop through the group's grant");
    assert!(!bob.can_on(Permission::FlowsOperate, "api"));
    let carol = snap.principal(actor("carol"), &user("carol", &[]), None);
    assert!(!carol.can(Permission::FlowsRead), "no instance-wide role");
    assert!(carol.can_on(Permission::FlowsOperate, "api"));
    assert!(!carol.can(Permission::AuditRead) && !carol.can_on(Permission::AuditRead, "api"), "a grant gives only flow permissions");
    let nobody = snap.principal(actor("dave"), &user("dave", &["no-such-role"]), None);
    assert!(nobody.global.is_empty() && nobody.flows.is_empty(), "unknown roles give nothing");
}

#[test]
fn a_token_is_limited_to_its_scopes() {
    let snap = snapshot();
    let scopes: PermissionSet = [Permission::FlowsRead].into_iter().collect();
    let admin = snap.principal(actor("ada"), &user("ada", &["admin"]), Some(scopes));
    assert!(admin.can(Permission::FlowsRead));
    assert!(!admin.can(Permission::UsersManage), "an admin's read-only token cannot manage users");
    let bob = snap.principal(actor("bob"), &user("bob", &[]), Some(scopes));
    assert!(!bob.can_on(Permission::FlowsOperate, "shop"), "grants are limited by the scopes too");
}

#[test]
fn rules_answer_403_or_hide_flows_the_caller_cannot_read() {
    let snap = snapshot();
    let bob = snap.principal(actor("bob"), &user("bob", &[]), None);
    assert!(bob.check(Rule::Flow(Permission::FlowsOperate), Some("shop")).is_ok());
    let refused = bob.check(Rule::Flow(Permission::FlowsOperate), Some("api")).err().map(|e| (e.status().as_u16(), e.code()));
    assert_eq!(refused, Some((403, "forbidden")), "bob reads api (viewer) but may not operate it");
    let carol = snap.principal(actor("carol"), &user("carol", &[]), None);
    let hidden = carol.check(Rule::Flow(Permission::FlowsRead), Some("shop")).err().map(|e| (e.status().as_u16(), e.code()));
    assert_eq!(hidden, Some((404, "unknown_flow")), "a flow carol cannot read looks absent");
    let global = carol.check(Rule::Global(Permission::UsersManage), None).err().map(|e| e.status().as_u16());
    assert_eq!(global, Some(403));
    assert!(carol.check(Rule::Authenticated, None).is_ok());
}
