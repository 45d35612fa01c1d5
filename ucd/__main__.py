from ucd.cli import main

raise SystemExit(main())
