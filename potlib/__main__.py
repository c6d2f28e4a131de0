from potlib.cli import main

raise SystemExit(main())
