use dawdle::{Insert, Watched};

#[derive(Watched)]
#[dawdle(table = "users")]
struct User {
    id: i64,
}

struct Greeter;

impl Greeter {
    #[dawdle::handler]
    async fn welcome(&self, _event: Insert<User>) {}
}

fn main() {}
