use super::split;

#[test]
fn urls_split_into_host_and_path() {
    assert_eq!(split("https://Shop.Example.com:8443/cart?x=1"), Some(("shop.example.com".into(), "/cart".into())));
    assert_eq!(split("shop.test"), Some(("shop.test".into(), "/".into())));
    assert_eq!(split("http://user@shop.test/a#b"), Some(("shop.test".into(), "/a".into())));
    assert_eq!(split("https:///x"), None);
    assert_eq!(split("   "), None);
}
