use super::*;

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(*k, v.parse().expect("header value"));
    }
    h
}

#[test]
fn every_gateway_dialect_gives_the_original_request() {
    let get = Method::GET;
    let check: Uri = "/check".parse().expect("uri");
    // Caddy, Traefik, APISIX and our snippets.
    let o = original_from_http(
        &get,
        &check,
        &headers(&[
            ("host", "leannodes:9090"),
            ("x-forwarded-host", "shop.test"),
            ("x-forwarded-uri", "/cart?id=1"),
            ("x-forwarded-method", "POST"),
        ]),
    );
    assert_eq!((o.host.as_str(), o.uri.as_str(), o.method.as_str()), ("shop.test", "/cart?id=1", "POST"));
    assert_eq!(o.inquiry().path, "/cart");
    // ingress-nginx.
    let o = original_from_http(
        &get,
        &check,
        &headers(&[("x-original-url", "https://shop.test:8443/a/b?c=d"), ("x-original-method", "DELETE")]),
    );
    assert_eq!((o.host.as_str(), o.uri.as_str(), o.method.as_str()), ("shop.test:8443", "/a/b?c=d", "DELETE"));
    // Our plain-nginx snippet.
    let o = original_from_http(
        &get,
        &check,
        &headers(&[("x-original-host", "shop.test"), ("x-original-uri", "/x"), ("x-original-method", "PUT")]),
    );
    assert_eq!((o.host.as_str(), o.uri.as_str(), o.method.as_str()), ("shop.test", "/x", "PUT"));
    // Envoy HTTP: original method, Host, and path appended to /check.
    let o = original_from_http(&Method::PATCH, &"/check/orders/7?full=1".parse().expect("uri"), &headers(&[("host", "shop.test")]));
    assert_eq!((o.host.as_str(), o.uri.as_str(), o.method.as_str()), ("shop.test", "/orders/7?full=1", "PATCH"));
    let o = original_from_http(&get, &check, &headers(&[("host", "shop.test")]));
    assert_eq!(o.inquiry().path, "/");
}

#[test]
fn callouts_classify_clients_like_the_proxy() {
    let o = original_from_http(
        &Method::GET,
        &"/check".parse().expect("uri"),
        &headers(&[("accept", "text/html,*/*"), ("x-forwarded-method", "GET")]),
    );
    assert_eq!(o.inquiry().client, Client::Browser);
    let o = original_from_http(
        &Method::GET,
        &"/check".parse().expect("uri"),
        &headers(&[("accept", "text/html"), ("x-forwarded-method", "POST")]),
    );
    assert_eq!(o.inquiry().client, Client::Api, "a browser's POST is not shown the warm-up page");
    let o =
        original_from_http(&Method::POST, &"/check/svc.Echo/Say".parse().expect("uri"), &headers(&[("content-type", "application/grpc")]));
    assert_eq!(o.inquiry().client, Client::Grpc);
}

#[test]
fn denied_envoy_responses_carry_status_headers_and_body() {
    let reply = json_reply(503, "cold_start_timeout", Some("shop"), "still waking", Some(5), serde_json::json!({}));
    let response = envoy_response(Decision::Deny(reply));
    assert_eq!(response.status.as_ref().map(|s| s.code), Some(7));
    let Some(HttpResponse::DeniedResponse(denied)) = response.http_response else { panic!("denied") };
    assert_eq!(denied.status.map(|s| s.code), Some(503));
    let keys: Vec<(String, String)> =
        denied.headers.iter().filter_map(|h| h.header.as_ref()).map(|h| (h.key.clone(), h.value.clone())).collect();
    assert!(keys.contains(&("retry-after".into(), "5".into())), "{keys:?}");
    assert!(keys.contains(&("cache-control".into(), "no-store".into())));
    assert!(denied.body.contains("\"error\":\"cold_start_timeout\""));
    let allow = envoy_response(Decision::Allow);
    assert_eq!(allow.status.map(|s| s.code), Some(0));
}
