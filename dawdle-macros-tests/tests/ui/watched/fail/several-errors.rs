use dawdle::Watched;

// Every mistake is reported in one go, each where it is.
#[derive(Watched)]
#[dawdle(tabel = "users")]
struct User {
    #[dawdle(primary_key, primary_key)]
    id: i32,
    #[dawdle(renmae = "full_name")]
    name: String,
}

fn main() {}
