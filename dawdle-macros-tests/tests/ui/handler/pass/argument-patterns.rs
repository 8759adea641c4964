// Any pattern can bind the event: the function is called as written.
use dawdle::{Delete, Insert, Update, Watched};

#[derive(Watched)]
#[dawdle(table = "users")]
struct User {
    id: i64,
}

#[dawdle::handler]
async fn destructured(Insert { new, meta }: Insert<User>) {
    let _ = (new.id, meta.id);
}

#[dawdle::handler]
async fn ignored(_: Delete<User>) {}

#[dawdle::handler]
async fn mutable(mut event: Update<User>) {
    event.new.id += 1;
}

fn main() {
    assert_eq!(dawdle::handler::handlers().len(), 3);
}
