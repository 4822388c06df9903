from backend_implementor.cli import main

main()
