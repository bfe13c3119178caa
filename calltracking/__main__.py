from calltracking.cli import main

main()
