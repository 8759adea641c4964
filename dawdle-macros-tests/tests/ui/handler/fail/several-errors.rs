use dawdle::{Insert, Watched};

#[derive(Watched)]
#[dawdle(table = "users")]
struct User {
    id: i64,
}

#[dawdle::handler(nmae = "welcome")]
fn welcome<T>(_event: &Insert<User>, _extra: T) -> i32 {
    0
}

fn main() {}
