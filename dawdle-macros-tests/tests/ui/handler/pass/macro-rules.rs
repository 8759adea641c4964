// Options and types passed through `macro_rules!` arrive in invisible groups.
use dawdle::{Insert, Watched};

#[derive(Watched)]
#[dawdle(table = "users")]
struct User {
    id: i64,
}

macro_rules! handler {
    ($name:expr, $fn:ident, $event:ty) => {
        #[dawdle::handler(name = $name)]
        async fn $fn(_event: $event) {}
    };
}

handler!("from a macro", welcome, Insert<User>);

fn main() {
    assert_eq!(dawdle::handler::handlers()[0].name, "from a macro");
}
