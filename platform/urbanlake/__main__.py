from urbanlake.cli import main

main()
