"""One module per `rexjax` sub-command; each defines absl flags and `main(argv)`."""
