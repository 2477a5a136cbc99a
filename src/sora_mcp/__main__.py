from sora_mcp.cli import main

raise SystemExit(main())
