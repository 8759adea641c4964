use dawdle::Watched;

#[derive(Watched)]
#[dawdle(table = "users")]
struct User {
    #[dawdle(primary)]
    id: i32,
}

fn main() {}
