from image.cli import main

main()
