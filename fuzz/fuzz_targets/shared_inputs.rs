//! What the shared store's side reads from outside: messages of the cooling channel
//! (another process, or anything that can publish on Redis) and the Redis URL of the
//! settings. Never a panic; a message is read only when it is exactly `KEY WAIT_MS`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    proxy_runtime::fuzz::shared_inputs(data);
});
