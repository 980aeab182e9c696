$ORIGIN example.com.
$TTL 3600
@       IN SOA  ns1.example.com. hostmaster.example.com. ( 2026112701 7200 3600 1209600 300 )
        IN NS   ns1
        IN NS   ns2.example.net.
        IN MX   10 mail
        IN TXT  "v=spf1 mx -all"
ns1     IN A    192.0.2.53
        IN AAAA 2001:db8::53
mail    IN A    192.0.2.25
www     300 IN A 192.0.2.10
        300 IN A 192.0.2.11
        300 IN AAAA 2001:db8::10
web     IN CNAME www
cdn     IN CNAME edge.example.net.
*.apps  IN A    192.0.2.80
a.b.c   IN TXT  "deep"
sub     IN NS   ns.sub
ns.sub  IN A    192.0.2.153
