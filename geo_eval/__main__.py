from geo_eval.cli import main

main()
