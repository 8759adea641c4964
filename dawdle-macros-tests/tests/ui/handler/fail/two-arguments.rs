use dawdle::{Insert, Watched};

#[derive(Watched)]
#[dawdle(table = "users")]
struct User {
    id: i64,
}

#[dawdle::handler]
async fn welcome(_event: Insert<User>, _greeting: String, _times: u32) {}

fn main() {}
