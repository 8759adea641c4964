use dawdle::Insert;

#[dawdle::handler]
async fn welcome(_event: Insert<Usr>) {}

fn main() {}
