use dawdle::Watched;

#[derive(Watched)]
#[dawdle(table = "users")]
struct User {
    #[dawdle(primary_key = true)]
    id: i32,
}

fn main() {}
