use dawdle::Watched;

#[derive(Watched)]
#[dawdle(table = "users")]
struct User {
    id: i64,
}

#[dawdle::handler]
async fn welcome(_user: User) {}

fn main() {}
