use dawdle::Watched;

#[derive(Watched)]
#[dawdle(table = "memberships")]
struct Membership {
    #[dawdle(primary_key)]
    user_id: i64,
    #[dawdle(primary_key)]
    group_id: i64,
    // Not the key: `primary_key` is given elsewhere.
    id: i64,
}

fn main() {
    let key: Vec<_> = Membership::TABLE.primary_key().map(|c| c.name).collect();
    assert_eq!(key, ["user_id", "group_id"]);
}
