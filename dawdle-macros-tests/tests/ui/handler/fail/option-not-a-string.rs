use dawdle::{Insert, Watched};

#[derive(Watched)]
#[dawdle(table = "users")]
struct User {
    id: i64,
}

#[dawdle::handler(name = welcome)]
async fn welcome(_event: Insert<User>) {}

fn main() {}
