//! One exit's weight window driven by arbitrary operations (take, answer with or without
//! the exchange's count, give back, time passing), and the used-weight header's value
//! read as a count: never a panic, nothing let through past the budget, a refused request
//! told an instant at which it passes, and the counts kept consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    proxy_runtime::fuzz::weight_window(data);
});
