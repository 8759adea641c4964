#[derive(serde::Serialize, serde::Deserialize, dawdle::Signal)]
#[dawdle(name = "")]
struct Empty;

#[derive(serde::Serialize, serde::Deserialize, dawdle::Signal)]
#[dawdle(table = "users")]
struct Unknown;

#[derive(serde::Serialize, serde::Deserialize, dawdle::Signal)]
#[dawdle(name = 7)]
struct NotAString;

#[derive(serde::Serialize, serde::Deserialize, dawdle::Signal)]
struct Generic<T> {
    value: T,
}

fn main() {}
