use super::Kind;

#[test]
fn the_configuration_knows_every_gateway_by_its_name() {
    let names: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(names, leannodes_config::GATEWAY_NAMES.to_vec(), "`[server] callout_gateway` accepts exactly these");
    for name in names {
        assert_eq!(Kind::parse(name).map(Kind::as_str), Some(name));
    }
}
