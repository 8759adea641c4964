use dawdle::Insert;

#[dawdle::handler]
async fn welcome(_event: Insert<String>) {}

fn main() {}
