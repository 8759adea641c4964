// The argument and the return type may be named through aliases, and the
// attribute through a `use`.
use dawdle::{handler, Insert, Watched};

#[derive(Watched)]
#[dawdle(table = "users")]
struct User {
    id: i64,
}

type NewUser = Insert<User>;
type Outcome = Result<(), std::io::Error>;

#[handler]
async fn welcome(_event: NewUser) -> Outcome {
    Ok(())
}

fn main() {
    assert_eq!(dawdle::handler::handlers()[0].actions(), [dawdle::Action::Insert]);
}
