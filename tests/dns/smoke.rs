use crate::support::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

#[test]
fn answers_over_udp_and_tcp() {
    let srv = start(&[("example.com.", EXAMPLE_ZONE)], "");
    for r in srv.both(&query("www.example.com.", RecordType::A, Some(1232))) {
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert!(r.metadata.authoritative);
        assert_eq!(r.answers.len(), 2);
    }
    let r = srv.udp(&query("x.apps.example.com.", RecordType::A, None));
    assert_eq!(r.answers.len(), 1, "{r:?}");
    srv.stop();
}
