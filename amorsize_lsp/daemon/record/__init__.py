"""Recording real runs: a start-up hook that times pool maps, and the code that stores them."""
