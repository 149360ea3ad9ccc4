from moodbox.cli import main

raise SystemExit(main())
