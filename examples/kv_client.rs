//! A key-value client; see `kv_server`.
//!
//! ```text
//! kv_client ADDR put KEY VALUE | get KEY | delete KEY | keys
//! ```

#[path = "kv/service.rs"]
#[allow(dead_code)]
mod service;

use std::process::ExitCode;

use service::KeyValueClient;

const USAGE: &str = "usage: kv_client ADDR (put KEY VALUE | get KEY | delete KEY | keys)";

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((addr, command)) = args.split_first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let client = match KeyValueClient::connect(addr.as_str()).await {
        Ok(client) => client,
        Err(e) => {
            eprintln!("kv_client: {e}");
            return ExitCode::FAILURE;
        }
    };
    let words: Vec<&str> = command.iter().map(String::as_str).collect();
    let outcome = match words.as_slice() {
        ["put", key, value] => client
            .put((*key).to_owned(), (*value).to_owned())
            .await
            .map(|old| match old {
                Some(old) => format!("replaced {old:?}"),
                None => "stored".to_owned(),
            }),
        ["get", key] => client
            .get((*key).to_owned())
            .await
            .map(|value| value.unwrap_or_else(|| "(not found)".to_owned())),
        ["delete", key] => client
            .delete((*key).to_owned())
            .await
            .map(|result| match result {
                Ok(value) => format!("deleted {value:?}"),
                Err(e) => e.to_string(),
            }),
        ["keys"] => client.keys().await.map(|keys| keys.join("\n")),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match outcome {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("kv_client: {e}");
            ExitCode::FAILURE
        }
    }
}
