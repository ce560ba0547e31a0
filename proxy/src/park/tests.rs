use super::*;

use pingora::protocols::l4::stream::Stream as L4Stream;

/// A connected pair: the server side as Pingora's stream, the client side as a plain socket.
async fn pair() -> (Stream, tokio::net::TcpStream) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("test setup");
    let client = tokio::net::TcpStream::connect(listener.local_addr().expect("test setup")).await.expect("test setup");
    let (server, _) = listener.accept().await.expect("test setup");
    (Box::new(L4Stream::from(server)), client)
}

#[tokio::test]
async fn a_complete_head_is_parsed_and_the_bytes_after_it_are_kept() {
    let bytes = b"POST /api/x?q=1 HTTP/1.1\r\nHost: app.test\r\nContent-Length: 3\r\nAccept: text/html\r\n\r\nabcGET";
    let mut read = Vec::new();
    let Head::Request(req) = read_head(&mut &bytes[..], &mut read).await.expect("test setup") else { panic!("not a request") };
    assert_eq!(req.method, http::Method::POST);
    assert_eq!(req.uri.path(), "/api/x");
    assert_eq!(req.headers.get("host").expect("test setup"), "app.test");
    assert!(declares_body(&req));
    assert!(!is_upgrade(&req));
    assert_eq!(read, bytes, "everything read is replayed, the body and the next request included");
    assert_eq!(inquiry_of(&req).host, "app.test");
}

#[tokio::test]
async fn a_head_that_arrives_in_pieces_is_read_to_its_end() {
    let (mut server, mut client) = pair().await;
    let reader = tokio::spawn(async move {
        let mut read = Vec::new();
        let head = read_head(&mut server, &mut read).await.expect("test setup");
        (head, read)
    });
    for piece in [&b"GET / HT"[..], b"TP/1.1\r\nHost: a", b".test\r\nUpgrade: websocket\r\n", b"\r\n"] {
        client.write_all(piece).await.expect("test setup");
        client.flush().await.expect("test setup");
        tokio::task::yield_now().await;
    }
    let (head, read) = reader.await.expect("test setup");
    let Head::Request(req) = head else { panic!("not a request") };
    assert!(is_upgrade(&req));
    assert!(!declares_body(&req));
    assert_eq!(read, b"GET / HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\n\r\n");
}

#[tokio::test]
async fn oversized_heads_and_header_floods_are_refused() {
    let mut flood = b"GET / HTTP/1.1\r\n".to_vec();
    for i in 0..=MAX_HEADERS {
        flood.extend_from_slice(format!("x-{i}: 1\r\n").as_bytes());
    }
    flood.extend_from_slice(b"\r\n");
    assert!(matches!(read_head(&mut &flood[..], &mut Vec::new()).await.expect("test setup"), Head::TooLarge));

    // A head that is still incomplete at MAX_HEAD bytes is refused without reading further.
    let mut huge = b"GET / HTTP/1.1\r\nx-big: ".to_vec();
    huge.resize(MAX_HEAD * 2, b'a');
    let mut read = Vec::new();
    assert!(matches!(read_head(&mut &huge[..], &mut read).await.expect("test setup"), Head::TooLarge));
    assert!(read.len() <= MAX_HEAD, "read {} bytes", read.len());

    // One complete head just over the limit (a single read can bring it in).
    let mut big = b"GET / HTTP/1.1\r\nx-big: ".to_vec();
    big.resize(MAX_HEAD + 10, b'a');
    big.extend_from_slice(b"\r\n\r\n");
    assert!(matches!(parse_head(&big), Parse::Done(Head::TooLarge)));
}

#[tokio::test]
async fn http2_and_garbage_go_to_the_proxy_unparsed() {
    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    assert!(matches!(read_head(&mut &preface[..], &mut Vec::new()).await.expect("test setup"), Head::Other));
    assert!(matches!(read_head(&mut &b"\x16\x03\x01\x02\x00"[..], &mut Vec::new()).await.expect("test setup"), Head::Other));
}

#[tokio::test]
async fn a_connection_closed_before_its_head_is_an_error() {
    assert!(read_head(&mut &b"GET / HTTP/1.1\r\nHost:"[..], &mut Vec::new()).await.is_err());
}

#[tokio::test]
async fn the_proxy_reads_the_replayed_bytes_then_the_socket() {
    // (That the verdict is taken once is tests/proxy.rs: a kept-alive connection's next request.)
    let (server, mut client) = pair().await;
    let mut stream: Stream = Box::new(Unparked::new(server, b"GET / HTTP/1.1\r\n\r\n".to_vec(), true, None));
    assert!(Unparked::take(&stream).is_none());
    client.write_all(b"more").await.expect("test setup");
    client.shutdown().await.expect("test setup");
    let mut all = Vec::new();
    stream.read_to_end(&mut all).await.expect("test setup");
    assert_eq!(all, b"GET / HTTP/1.1\r\n\r\nmore");
}

#[tokio::test]
async fn a_short_replay_is_completed_from_the_socket_to_tell_http2() {
    let (server, mut client) = pair().await;
    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let mut stream = Unparked::new(server, preface[..16].to_vec(), false, None);
    client.write_all(&preface[16..]).await.expect("test setup");
    let mut peeked = [0u8; 24];
    assert!(stream.try_peek(&mut peeked).await.expect("test setup"));
    assert_eq!(&peeked, preface);
    let mut read = [0u8; 24];
    stream.read_exact(&mut read).await.expect("test setup");
    assert_eq!(&read, preface, "peeking consumed nothing");
}

#[tokio::test]
async fn a_whole_http1_head_is_peeked_without_waiting_for_more() {
    let (server, _client) = pair().await;
    let mut stream = Unparked::new(server, b"GET / HTTP/1.0\r\n\r\n".to_vec(), true, None);
    let mut peeked = [0u8; 24];
    assert!(stream.try_peek(&mut peeked).await.expect("test setup"));
    assert_ne!(&peeked, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
}

#[tokio::test]
async fn a_parked_client_that_closes_is_seen_and_pipelined_bytes_are_kept() {
    let (mut server, client) = pair().await;
    drop(client);
    let mut read = Vec::new();
    client_gone(&mut server, &mut read, true).await;

    let (mut server, mut client) = pair().await;
    client.write_all(b"GET /next HTTP/1.1\r\n\r\n").await.expect("test setup");
    let mut read = b"GET / HTTP/1.1\r\n\r\n".to_vec();
    let watched = tokio::time::timeout(Duration::from_millis(500), client_gone(&mut server, &mut read, true)).await;
    assert!(watched.is_err(), "data from the client is not a close");
    // What arrived is kept behind the first head (the rest stays in the socket for the proxy).
    assert!(read.len() > 18 && b"GET / HTTP/1.1\r\n\r\nGET /next HTTP/1.1\r\n\r\n".starts_with(&read), "{read:?}");
}
