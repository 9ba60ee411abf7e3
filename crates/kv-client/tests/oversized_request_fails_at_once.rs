//! A request too large for one frame is refused at once with
//! `ClientError::RequestTooLarge`, is never sent, and leaves the connection
//! and the requests behind it working.

mod support;

use std::time::Duration;

use kv_client::{Client, ClientConfig, ClientError};
use kv_wire::client::Request;
use support::{FakeNode, value};

const FRAME_LEN_MAX: usize = 4096;

#[tokio::test]
async fn oversized_put_fails_without_being_sent_and_the_connection_survives() {
    let a = FakeNode::answering("default", 1, value("from-a")).await;
    let mut config = ClientConfig::new([a.addr.clone()]);
    config.frame_len_max = FRAME_LEN_MAX;
    // Long enough that a client waiting for an answer that cannot come
    // reports Timeout rather than the refusal this test expects.
    config.request_timeout = Duration::from_secs(60);
    let client = Client::connect(config).await.unwrap();

    let result = client.put("k", vec![0u8; 2 * FRAME_LEN_MAX], None).await;

    match result {
        Err(ClientError::RequestTooLarge { len, max }) => {
            assert!(len > FRAME_LEN_MAX, "{len}");
            assert_eq!(max, FRAME_LEN_MAX);
        }
        other => panic!("expected RequestTooLarge, got {other:?}"),
    }
    assert_eq!(
        a.requests(),
        vec![],
        "the oversized request reached the node"
    );

    // The connection is still the one opened at connect.
    let read = client.get("k").await.unwrap();
    assert_eq!(read.value().map(|v| &v[..]), Some(&b"from-a"[..]));
    assert!(matches!(a.requests()[..], [Request::Get { .. }]));
    assert_eq!(
        a.connections(),
        1,
        "the oversized request broke the connection"
    );
}
