use std::path::Path;

use leannodes_config::{CertificatePaths, TlsListener};

use super::*;

/// A self-signed certificate for `names`, written to `dir/{stem}.pem` and `dir/{stem}.key`.
fn cert(dir: &Path, stem: &str, names: &[&str]) -> CertificatePaths {
    let generated = rcgen::generate_simple_self_signed(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).expect("generate");
    let paths = CertificatePaths { cert: dir.join(format!("{stem}.pem")), key: dir.join(format!("{stem}.key")) };
    std::fs::write(&paths.cert, generated.cert.pem()).expect("write cert");
    std::fs::write(&paths.key, generated.key_pair.serialize_pem()).expect("write key");
    paths
}

fn listener(certs: Vec<CertificatePaths>) -> TlsListener {
    TlsListener { listen: "127.0.0.1:8443".parse().expect("addr"), certs }
}

/// The DER of the certificate a listener presents for `sni`.
fn presented(certs: &ListenerCerts, sni: Option<&str>) -> Vec<u8> {
    certs.certificate_for(sni).expect("a certificate").cert[0].to_vec()
}

fn der_of(paths: &CertificatePaths) -> Vec<u8> {
    CertificateDer::pem_file_iter(&paths.cert).expect("pem").next().expect("one").expect("der").to_vec()
}

#[test]
fn sni_picks_exact_names_before_wildcards_and_falls_back_to_the_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let default = cert(dir.path(), "default", &["default.test"]);
    let wildcard = cert(dir.path(), "wild", &["*.shop.test"]);
    let exact = cert(dir.path(), "exact", &["api.shop.test", "Docs.Test"]);
    let certs = ListenerCerts::load(&listener(vec![default.clone(), wildcard.clone(), exact.clone()])).expect("load");

    assert_eq!(presented(&certs, Some("api.shop.test")), der_of(&exact), "an exact name beats the wildcard");
    assert_eq!(presented(&certs, Some("DOCS.test")), der_of(&exact), "names compare without case");
    assert_eq!(presented(&certs, Some("www.shop.test")), der_of(&wildcard), "the wildcard covers one label");
    assert_eq!(presented(&certs, Some("a.b.shop.test")), der_of(&default), "but not two");
    assert_eq!(presented(&certs, Some("unknown.test")), der_of(&default), "unknown names get the first certificate");
    assert_eq!(presented(&certs, None), der_of(&default), "clients without SNI get the first certificate");
}

#[test]
fn unreadable_empty_and_mismatched_files_are_named_in_the_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = cert(dir.path(), "a", &["a.test"]);
    let b = cert(dir.path(), "b", &["b.test"]);

    let missing = CertificatePaths { cert: dir.path().join("nope.pem"), key: a.key.clone() };
    let e = ListenerCerts::load(&listener(vec![missing])).expect_err("missing file").to_string();
    assert!(e.contains("cannot read") && e.contains("nope.pem"), "{e}");

    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").expect("write");
    let e = ListenerCerts::load(&listener(vec![CertificatePaths { cert: empty, key: a.key.clone() }])).expect_err("no PEM").to_string();
    assert!(e.contains("no certificate in") && e.contains("empty.pem"), "{e}");

    let e = ListenerCerts::load(&listener(vec![CertificatePaths { cert: a.cert.clone(), key: a.cert.clone() }]))
        .expect_err("a certificate is not a key")
        .to_string();
    assert!(e.contains("no private key in") && e.contains("a.pem"), "{e}");

    let e = ListenerCerts::load(&listener(vec![CertificatePaths { cert: a.cert.clone(), key: b.key.clone() }]))
        .expect_err("mismatched key")
        .to_string();
    assert!(e.contains("does not belong to the certificate") && e.contains("b.key") && e.contains("a.pem"), "{e}");
}

#[test]
fn a_changed_file_is_swapped_in_and_a_broken_one_keeps_the_previous_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = cert(dir.path(), "site", &["site.test"]);
    let certs = ListenerCerts::load(&listener(vec![first.clone()])).expect("load");
    let mut watch = CertWatch::new(std::slice::from_ref(&certs));
    assert_eq!(watch.check(), 0, "nothing changed");
    let old = presented(&certs, Some("site.test"));

    // Rotation: both files replaced.
    let second = cert(dir.path(), "site", &["site.test"]);
    assert_eq!(watch.check(), 1);
    let new = presented(&certs, Some("site.test"));
    assert_ne!(new, old, "the new certificate is served");
    assert_eq!(new, der_of(&second));

    // Half a rotation: a new certificate whose key has not arrived yet.
    let other = tempfile::tempdir().expect("tempdir");
    let next = cert(other.path(), "next", &["site.test"]);
    std::fs::copy(&next.cert, &first.cert).expect("copy");
    assert_eq!(watch.check(), 0, "a certificate without its key is not taken");
    assert_eq!(presented(&certs, Some("site.test")), new, "the previous certificate keeps serving");
    std::fs::copy(&next.key, &first.key).expect("copy");
    assert_eq!(watch.check(), 1, "once the key matches, it is taken");
    assert_eq!(presented(&certs, Some("site.test")), der_of(&next));
}

#[test]
fn tls_failures_are_classified_from_rustls_messages() {
    let failure = |text: &str| TlsFailure::of(&pingora::Error::explain(pingora::ErrorType::TLSHandshakeFailure, text.to_string()));
    assert_eq!(failure("TLS connect() failed: invalid peer certificate: UnknownIssuer, SNI: x"), Some(TlsFailure::UnknownCa));
    assert_eq!(
        failure(
            "TLS connect() failed: invalid peer certificate: certificate expired: verification time 1, but certificate is not valid after 0"
        ),
        Some(TlsFailure::Expired)
    );
    assert_eq!(
        failure("invalid peer certificate: certificate not valid for name \"a\"; certificate is only valid for DnsName(\"b\")"),
        Some(TlsFailure::NameMismatch)
    );
    assert_eq!(failure("invalid peer certificate: NotValidForName"), Some(TlsFailure::NameMismatch));
    assert_eq!(failure("received fatal alert: HandshakeFailure"), Some(TlsFailure::Handshake));
    assert_eq!(TlsFailure::of(&pingora::Error::explain(pingora::ErrorType::ConnectRefused, "refused")), None);
}
