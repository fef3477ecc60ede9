use std::rc::Rc;

async fn run() -> Result<(), klaw::Error> {
    klaw::scope!(|s| {
        let shared = Rc::new(1);
        s.spawn(async move {
            klaw::time::sleep(std::time::Duration::from_millis(1)).await;
            *shared
        });
        Ok(())
    })
}

fn main() {}
