trait Event {}

#[dawdle::handler]
async fn welcome(_event: impl Event) {}

fn main() {}
