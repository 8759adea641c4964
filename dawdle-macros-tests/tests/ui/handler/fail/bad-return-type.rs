use dawdle::{Insert, Watched};

#[derive(Watched)]
#[dawdle(table = "users")]
struct User {
    id: i64,
}

#[dawdle::handler]
async fn welcome(_event: Insert<User>) -> i32 {
    0
}

fn main() {}
