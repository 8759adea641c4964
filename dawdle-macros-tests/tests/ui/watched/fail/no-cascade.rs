use dawdle::Watched;

// One mistake, one error: code using the type does not fail as well.
#[derive(Watched)]
#[dawdle(tabel = "users")]
struct User {
    id: i32,
}

fn needs_watched<T: Watched>() {}

fn main() {
    needs_watched::<User>();
    let _ = User::from_json(&serde_json::json!({ "id": 1 }));
}
