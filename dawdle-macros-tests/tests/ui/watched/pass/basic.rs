use dawdle::{Encoding, Watched};

#[derive(Watched)]
#[dawdle(table = "users")]
pub struct User {
    pub id: uuid::Uuid,
    pub name: String,
    pub email: Option<String>,
}

fn main() {
    let table = User::TABLE;
    assert_eq!((table.schema, table.name), ("public", "users"));
    assert!(table.type_name.ends_with("::User"));
    let key: Vec<_> = table.primary_key().map(|c| c.name).collect();
    assert_eq!(key, ["id"]);
    assert!(table
        .columns
        .iter()
        .all(|c| c.encoding == Encoding::Json && c.sql.is_none()));
    assert_eq!(table.events, dawdle::Events::ALL);
    assert!(!table.capture_unchanged);
}
