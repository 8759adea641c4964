use dawdle::{Insert, Watched};

#[derive(Watched)]
#[dawdle(table = "users")]
struct User {
    id: i64,
}

#[dawdle::handler]
async fn welcome(_event: Insert<User>) -> Result<usize, String> {
    Ok(1)
}

fn main() {}
