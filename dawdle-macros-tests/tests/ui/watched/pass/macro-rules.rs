// Attributes and types passed through `macro_rules!` arrive in invisible groups.
macro_rules! watched {
    ($table:expr, $name:ident, $ty:ty) => {
        #[derive(dawdle::Watched)]
        #[dawdle(table = $table)]
        struct $name {
            id: $ty,
        }
    };
}

watched!("things", Thing, i64);

fn main() {
    use dawdle::Watched;
    assert_eq!(Thing::TABLE.name, "things");
}
