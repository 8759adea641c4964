use dawdle::{Insert, Watched};

#[derive(Watched)]
#[dawdle(table = "users")]
struct User {
    id: i64,
}

struct NotDisplay;

#[dawdle::handler]
async fn welcome(_event: Insert<User>) -> Result<(), NotDisplay> {
    Ok(())
}

fn main() {}
