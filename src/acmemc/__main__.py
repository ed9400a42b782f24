from acmemc.cli import main

main()
