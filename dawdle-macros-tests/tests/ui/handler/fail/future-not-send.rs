use std::rc::Rc;

use dawdle::{Insert, Watched};

#[derive(Watched)]
#[dawdle(table = "users")]
struct User {
    id: i64,
}

async fn greet(_user: &User) {}

#[dawdle::handler]
async fn welcome(event: Insert<User>) {
    let user = Rc::new(event.new);
    greet(&user).await;
}

fn main() {}
