use dawdle::Watched;

#[derive(Watched)]
#[dawdle(table = "heartbeats", capture_unchanged)]
struct Heartbeat {
    id: i32,
}

fn main() {
    assert!(Heartbeat::TABLE.capture_unchanged);
}
