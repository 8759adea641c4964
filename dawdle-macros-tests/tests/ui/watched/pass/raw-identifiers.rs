use dawdle::Watched;

#[derive(Watched)]
#[dawdle(table = "r#types")]
struct r#Type {
    r#id: i32,
    r#type: String,
}

fn main() {
    let table = r#Type::TABLE;
    assert!(table.type_name.ends_with("::Type"));
    assert_eq!(table.name, "r#types");
    let names: Vec<_> = table.columns.iter().map(|c| (c.name, c.field)).collect();
    assert_eq!(names, [("id", "id"), ("type", "type")]);
    assert!(table.columns[0].primary_key);
}
