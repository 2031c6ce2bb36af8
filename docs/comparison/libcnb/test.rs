// The scaffold's tests, written with libcnb-test. It drives `pack build`
// against a builder image in Docker, so it needs a Docker daemon, `pack`,
// and the builder and run images pulled. Not run in this repository (no
// Docker daemon on these machines).

use libcnb_test::{BuildConfig, ContainerConfig, TestRunner, assert_contains};

#[test]
#[ignore = "integration test: needs Docker and pack"]
fn builds_a_greeting_layer_and_a_web_process() {
    TestRunner::default().build(
        BuildConfig::new("heroku/builder:24", "tests/fixtures/app"),
        |context| {
            assert_contains!(context.pack_stdout, "wrote the greeting");
            context.start_container(ContainerConfig::new(), |container| {
                let logs = container.logs_wait();
                assert_contains!(logs.stdout, "hello, world");
            });
        },
    );
}
