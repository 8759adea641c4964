// Default names are the module path and the function name.
mod accounts {
    pub mod users {
        use dawdle::{Insert, Watched};

        #[derive(Watched)]
        #[dawdle(table = "users")]
        pub struct User {
            pub id: i64,
        }

        #[dawdle::handler]
        pub async fn welcome(_event: Insert<User>) {}
    }
}

fn main() {
    // A handler inside a function body registers like any other.
    #[dawdle::handler]
    async fn r#loop(_event: dawdle::Delete<accounts::users::User>) {}

    let names: Vec<&str> = dawdle::handler::handlers().iter().map(|h| h.name).collect();
    let crate_name = module_path!();
    assert_eq!(
        names,
        [
            format!("{crate_name}::accounts::users::welcome"),
            format!("{crate_name}::loop"),
        ]
    );
}
