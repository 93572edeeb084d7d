pytest_plugins = ["tests.neo4j_server", "tests.stores", "tests.cli_support"]
