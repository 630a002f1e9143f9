from claude_sync.cli import main

main()
